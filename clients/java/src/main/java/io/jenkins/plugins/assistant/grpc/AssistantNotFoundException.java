package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** NOT_FOUND: no such answer or session for this owner (sessions and answers belong to the owner that created them). */
public class AssistantNotFoundException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantNotFoundException(String message, Throwable cause) {
        super(Status.Code.NOT_FOUND, message, cause);
    }
}
