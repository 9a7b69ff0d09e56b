package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** RESOURCE_EXHAUSTED: every generation slot and the queue are taken; retry later. */
public class AssistantBusyException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantBusyException(String message, Throwable cause) {
        super(Status.Code.RESOURCE_EXHAUSTED, message, cause);
    }

    @Override
    public boolean isRetryable() {
        return true;
    }
}
