package io.jenkins.plugins.assistant.grpc;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import io.grpc.Status;
import java.util.Map;
import org.junit.Test;

/**
 * Which exception each gRPC status becomes. Runs without a service (also in `make java-client`); the real services
 * producing these statuses are AssistantClientTest's part.
 */
public class AssistantExceptionTest {
    @Test
    public void everyStatusBecomesItsExceptionKeepingTheServersMessage() {
        Map<Status.Code, Class<? extends AssistantException>> expected = Map.ofEntries(
                Map.entry(Status.Code.UNAUTHENTICATED, AssistantUnauthenticatedException.class),
                Map.entry(Status.Code.PERMISSION_DENIED, AssistantPermissionDeniedException.class),
                Map.entry(Status.Code.INVALID_ARGUMENT, AssistantInvalidRequestException.class),
                Map.entry(Status.Code.OUT_OF_RANGE, AssistantInvalidRequestException.class),
                Map.entry(Status.Code.FAILED_PRECONDITION, AssistantInvalidRequestException.class),
                Map.entry(Status.Code.NOT_FOUND, AssistantNotFoundException.class),
                Map.entry(Status.Code.RESOURCE_EXHAUSTED, AssistantBusyException.class),
                Map.entry(Status.Code.UNAVAILABLE, AssistantUnavailableException.class),
                Map.entry(Status.Code.DEADLINE_EXCEEDED, AssistantDeadlineExceededException.class),
                Map.entry(Status.Code.CANCELLED, AssistantCancelledException.class),
                Map.entry(Status.Code.INTERNAL, AssistantException.class),
                Map.entry(Status.Code.UNKNOWN, AssistantException.class));
        for (Map.Entry<Status.Code, Class<? extends AssistantException>> entry : expected.entrySet()) {
            Status status = entry.getKey().toStatus().withDescription("what the server said");
            AssistantException mapped = AssistantException.from(status.asRuntimeException());
            assertEquals(entry.getKey().name(), entry.getValue(), mapped.getClass());
            assertEquals(entry.getKey(), mapped.getCode());
            assertEquals(entry.getKey().name() + ": what the server said", mapped.getMessage());
            boolean retryable = entry.getKey() == Status.Code.UNAVAILABLE
                    || entry.getKey() == Status.Code.RESOURCE_EXHAUSTED;
            assertEquals(entry.getKey().name(), retryable, mapped.isRetryable());
        }
    }

    @Test
    public void anExceptionThatIsNotAStatusIsUnknownAndKeptAsTheCause() {
        IllegalStateException bug = new IllegalStateException("listener bug");
        AssistantException mapped = AssistantException.from(bug);
        assertEquals(Status.Code.UNKNOWN, mapped.getCode());
        assertSame(bug, mapped.getCause().getCause());
        assertFalse(mapped.isRetryable());
        AssistantException again = AssistantException.from(mapped);
        assertSame(mapped, again);
        assertTrue(again.getMessage().startsWith("UNKNOWN"));
    }
}
