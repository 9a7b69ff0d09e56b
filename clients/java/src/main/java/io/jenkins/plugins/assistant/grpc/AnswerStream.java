package io.jenkins.plugins.assistant.grpc;

import io.grpc.Context;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.CancellationException;

/**
 * A streamed answer read by blocking iteration (for code that pulls, e.g. a build step writing to the console):
 * the raw {@code ChatResponse} / {@code ExplainBuildLogResponse} events in order. Failures arrive from
 * {@link #hasNext()} / {@link #next()} as {@link AssistantException}s. {@link #close()} cancels the call if it has
 * not ended, so use it in try-with-resources: leaving the loop early frees the service's slot.
 */
public final class AnswerStream<R> implements Iterator<R>, AutoCloseable {
    private final Context.CancellableContext context;
    private final Iterator<R> responses;
    private boolean ended;

    AnswerStream(Context.CancellableContext context, Iterator<R> responses) {
        this.context = context;
        this.responses = responses;
    }

    @Override
    public boolean hasNext() {
        try {
            boolean more = responses.hasNext();
            ended = !more;
            return more;
        } catch (RuntimeException e) {
            ended = true;
            throw AssistantException.from(e);
        }
    }

    @Override
    public R next() {
        if (!hasNext()) {
            throw new NoSuchElementException("the answer stream has ended");
        }
        try {
            return responses.next();
        } catch (RuntimeException e) {
            ended = true;
            throw AssistantException.from(e);
        }
    }

    /** Cancels the call: the service stops generating; a later {@link #hasNext()} throws a cancellation. */
    public void cancel() {
        // grpc-java's blocking streams are cancelled through the Context they were started in.
        context.cancel(new CancellationException("cancelled by the client"));
    }

    @Override
    public void close() {
        // Always: cancelling an ended call does nothing, and it detaches the context from its parent.
        cancel();
        ended = true;
    }
}
