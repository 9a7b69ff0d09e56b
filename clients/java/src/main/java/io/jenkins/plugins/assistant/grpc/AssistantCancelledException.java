package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;

/** CANCELLED: the call was cancelled (by {@link AnswerCall#cancel()} or closing its stream); the service frees its slot. */
public class AssistantCancelledException extends AssistantException {
    private static final long serialVersionUID = 1L;

    public AssistantCancelledException(String message, Throwable cause) {
        super(Status.Code.CANCELLED, message, cause);
    }
}
