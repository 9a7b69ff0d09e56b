package io.jenkins.plugins.assistant.grpc;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.jenkins.plugins.assistant.grpc.v1.AnswerFinished;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A streamed answer in progress, delivered to an {@link AnswerListener}. {@link #cancel()} stops it: the service
 * stops generating and frees the slot for the next question (e.g. when the user closes the page).
 *
 * @param <R> the stream's response message
 * @param <M> its metadata event
 */
public final class AnswerCall<R, M> {
    private final Observer observer = new Observer();
    private final CompletableFuture<AnswerFinished> done = new CompletableFuture<>();
    private final AnswerListener<M> listener;
    private final StreamEvents<R, M> events;
    private volatile ClientCallStreamObserver<?> call;
    private volatile AnswerFinished finished;
    // Exactly one of onCompleted/onError reaches the listener, even when cancel() races the end of the stream.
    private final AtomicBoolean ended = new AtomicBoolean();

    AnswerCall(AnswerListener<M> listener, StreamEvents<R, M> events) {
        this.listener = listener;
        this.events = events;
    }

    <Q> ClientResponseObserver<Q, R> observer() {
        @SuppressWarnings("unchecked")
        ClientResponseObserver<Q, R> typed = (ClientResponseObserver<Q, R>) (ClientResponseObserver<?, R>) observer;
        return typed;
    }

    /** Cancels the call; the listener gets {@link AssistantCancelledException} unless the answer already ended. */
    public void cancel() {
        cancel("cancelled by the client", null);
    }

    private void cancel(String reason, Throwable cause) {
        ClientCallStreamObserver<?> current = call;
        if (current != null) {
            current.cancel(reason, cause);
        }
    }

    /**
     * Completes with the finished event when the answer ends normally, or exceptionally with the
     * {@link AssistantException} the listener received. For callers that wait (a build step) rather than listen.
     */
    public CompletableFuture<AnswerFinished> done() {
        return done;
    }

    private final class Observer implements ClientResponseObserver<Object, R> {
        @Override
        public void beforeStart(ClientCallStreamObserver<Object> requestStream) {
            call = requestStream;
        }

        @Override
        public void onNext(R response) {
            try {
                switch (events.kind(response)) {
                    case METADATA:
                        listener.onMetadata(events.metadata(response));
                        break;
                    case SOURCES:
                        listener.onSources(events.sources(response));
                        break;
                    case DELTA:
                        listener.onDelta(events.delta(response));
                        break;
                    case FINISHED:
                        finished = events.finished(response);
                        listener.onFinished(finished);
                        break;
                    default:
                        // An event a newer server added to the oneof: skipped, so old plugins keep working.
                        break;
                }
            } catch (RuntimeException e) {
                // gRPC would only log a listener's exception; the plugin must learn its UI code failed.
                cancel("the answer listener threw " + e, e);
            }
        }

        @Override
        public void onError(Throwable error) {
            AssistantException mapped = AssistantException.from(error);
            if (ended.compareAndSet(false, true)) {
                try {
                    listener.onError(mapped);
                } finally {
                    done.completeExceptionally(mapped);
                }
            }
        }

        @Override
        public void onCompleted() {
            if (ended.compareAndSet(false, true)) {
                try {
                    listener.onCompleted();
                } finally {
                    done.complete(finished);
                }
            }
        }
    }
}
