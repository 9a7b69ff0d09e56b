package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/**
 * INVALID_ARGUMENT (or OUT_OF_RANGE, FAILED_PRECONDITION): the request itself is wrong, e.g. an empty or too long
 * question, a session id without an owner, a console log over the size limit. Retrying the same request fails again;
 * the message says what to change.
 */
public class AssistantInvalidRequestException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantInvalidRequestException(Status.Code code, String message, Throwable cause) {
        super(code, message, cause);
    }
}
