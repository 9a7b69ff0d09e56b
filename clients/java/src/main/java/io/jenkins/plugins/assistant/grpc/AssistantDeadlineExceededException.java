package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** DEADLINE_EXCEEDED: the call's deadline passed; the service stops generating for it. */
public class AssistantDeadlineExceededException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantDeadlineExceededException(String message, Throwable cause) {
        super(Status.Code.DEADLINE_EXCEEDED, message, cause);
    }
}
