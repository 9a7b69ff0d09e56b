package io.jenkins.plugins.assistant.grpc;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;

/**
 * A call to the assistant failed. Subclasses name the failures a plugin handles differently (ask the admin for the
 * token, show the user a validation message, retry later); anything else arrives as this class with its gRPC code.
 * Unchecked, like grpc-java's own {@link StatusRuntimeException}, which is kept as the cause.
 */
public class AssistantException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final Status.Code code;

    public AssistantException(Status.Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    /** The gRPC status code the service (or the channel) answered with. */
    public Status.Code getCode() {
        return code;
    }

    /** Whether the same call may succeed if tried again later (service busy, restarting or unreachable). */
    public boolean isRetryable() {
        return false;
    }

    /**
     * The exception for a failed call. The message keeps the server's description, which names what was wrong
     * (e.g. "question must be 1 to 4000 characters"), so it can be shown to an admin or logged as is.
     */
    public static AssistantException from(Throwable error) {
        if (error instanceof AssistantException) {
            return (AssistantException) error;
        }
        Status status = Status.fromThrowable(error);
        String description = status.getDescription() == null ? status.getCode().name()
                : status.getCode().name() + ": " + status.getDescription();
        Throwable cause = error instanceof StatusRuntimeException || error instanceof StatusException
                ? error : new StatusRuntimeException(status.withCause(error));
        switch (status.getCode()) {
            case UNAUTHENTICATED:
                return new AssistantUnauthenticatedException(description, cause);
            case PERMISSION_DENIED:
                return new AssistantPermissionDeniedException(description, cause);
            case INVALID_ARGUMENT:
            case OUT_OF_RANGE:
            case FAILED_PRECONDITION:
                return new AssistantInvalidRequestException(status.getCode(), description, cause);
            case NOT_FOUND:
                return new AssistantNotFoundException(description, cause);
            case RESOURCE_EXHAUSTED:
                return new AssistantBusyException(description, cause);
            case UNAVAILABLE:
                return new AssistantUnavailableException(description, cause);
            case DEADLINE_EXCEEDED:
                return new AssistantDeadlineExceededException(description, cause);
            case CANCELLED:
                return new AssistantCancelledException(description, cause);
            default:
                return new AssistantException(status.getCode(), description, cause);
        }
    }
}
