package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** PERMISSION_DENIED: the token is known but may not make this call. */
public class AssistantPermissionDeniedException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantPermissionDeniedException(String message, Throwable cause) {
        super(Status.Code.PERMISSION_DENIED, message, cause);
    }
}
