package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** UNAVAILABLE: the service cannot be reached, is not ready yet, or the client was closed; retry later (unless closed). */
public class AssistantUnavailableException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantUnavailableException(String message, Throwable cause) {
        super(Status.Code.UNAVAILABLE, message, cause);
    }

    @Override
    public boolean isRetryable() {
        return true;
    }
}
