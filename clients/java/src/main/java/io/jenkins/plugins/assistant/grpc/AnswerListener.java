package io.jenkins.plugins.assistant.grpc;

import io.jenkins.plugins.assistant.grpc.v1.AnswerFinished;
import io.jenkins.plugins.assistant.grpc.v1.Source;
import java.util.List;

/**
 * Receives the events of a streamed answer (a chat answer, with {@code M} = {@code AnswerMetadata}, or a build-log
 * explanation, with {@code M} = {@code ExplainBuildLogMetadata}) in the service's order: metadata, sources, text
 * deltas, finished, then either {@link #onCompleted()} or, instead of any of them, {@link #onError}.
 *
 * <p>Called on gRPC's executor threads, one event at a time; keep the work short (hand text to the UI, do not
 * block). An exception thrown here cancels the call and is passed to {@link #onError} as the cause of an
 * {@link AssistantCancelledException}.
 */
public interface AnswerListener<M> {
    /** What the service did before generating: answer id (for feedback), condensed question, history used. */
    default void onMetadata(M metadata) {}

    /** The numbered passages the answer cites as [n], in citation order; sent before the text. */
    default void onSources(List<Source> sources) {}

    /** The next piece of the answer's markdown. */
    default void onDelta(String text) {}

    /** Why generation stopped, token usage and timings, and warnings known only at the end. */
    default void onFinished(AnswerFinished finished) {}

    /** The stream ended normally; the last call. */
    default void onCompleted() {}

    /** The call failed, timed out or was cancelled; the last call. */
    default void onError(AssistantException error) {}
}
