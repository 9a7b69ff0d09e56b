package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** UNAUTHENTICATED: the bearer token is missing or unknown to the service (check the token the plugin is configured with). */
public class AssistantUnauthenticatedException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantUnauthenticatedException(String message, Throwable cause) {
        super(Status.Code.UNAUTHENTICATED, message, cause);
    }
}
