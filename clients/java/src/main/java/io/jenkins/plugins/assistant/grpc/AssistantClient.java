package io.jenkins.plugins.assistant.grpc;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.Context;
import io.grpc.ForwardingClientCall;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.stub.AbstractStub;
import io.jenkins.plugins.assistant.grpc.v1.AnswerMetadata;
import io.jenkins.plugins.assistant.grpc.v1.AskRequest;
import io.jenkins.plugins.assistant.grpc.v1.AskResponse;
import io.jenkins.plugins.assistant.grpc.v1.BuildLogServiceGrpc;
import io.jenkins.plugins.assistant.grpc.v1.ChatRequest;
import io.jenkins.plugins.assistant.grpc.v1.CheckPluginsRequest;
import io.jenkins.plugins.assistant.grpc.v1.CheckPluginsResponse;
import io.jenkins.plugins.assistant.grpc.v1.ChatResponse;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogMetadata;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogRequest;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogResponse;
import io.jenkins.plugins.assistant.grpc.v1.GenerationOptions;
import io.jenkins.plugins.assistant.grpc.v1.GetBuildLogExplanationRequest;
import io.jenkins.plugins.assistant.grpc.v1.JenkinsContext;
import io.jenkins.plugins.assistant.grpc.v1.GetBuildLogExplanationResponse;
import io.jenkins.plugins.assistant.grpc.v1.GetModelInfoRequest;
import io.jenkins.plugins.assistant.grpc.v1.GetModelInfoResponse;
import io.jenkins.plugins.assistant.grpc.v1.InferenceServiceGrpc;
import io.jenkins.plugins.assistant.grpc.v1.Rating;
import io.jenkins.plugins.assistant.grpc.v1.SubmitFeedbackRequest;
import java.time.Duration;
import java.util.Iterator;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The Jenkins assistant's gRPC API (InferenceService and BuildLogService of {@code protos/jenkins_assistant/v1}) for
 * a Jenkins plugin: streamed chat, ask, feedback, model info and build-log explanations.
 *
 * <pre>{@code
 * try (AssistantClient client = AssistantClient.builder("jenkins-assistant-inference:50051")
 *         .token(secretFromCredentials).build()) {
 *     AssistantClient forUser = client.withOwner(User.current().getId());
 *     AnswerCall<?, AnswerMetadata> call = forUser.chat(sessionId, "How do I ...?", listener);
 *     ... call.cancel();  // the user left: the service frees the slot
 * }
 * }</pre>
 *
 * <p>Every call carries the bearer token ({@code authorization: Bearer <token>}, as the Python clients send it) and
 * a deadline, and every request names an owner: the service keeps sessions and answers per owner, and a plugin
 * whose credential has the {@code assert-owner} scope speaks for the Jenkins user it names. A request that sets
 * {@code owner} itself keeps it; otherwise the client's owner ({@link #withOwner}) is filled in. Failures are
 * {@link AssistantException}s by gRPC status.
 *
 * <p>Thread-safe. One client per service address, shared by the whole plugin: its channel multiplexes every call.
 * {@link #withOwner} and {@link #withDeadline} return views over the same channel (closing a view does nothing);
 * {@link #close()} on the client that {@link Builder#build() built} the channel shuts it down.
 */
public final class AssistantClient implements AutoCloseable {
    /** The deadline of a call unless {@link Builder#deadline} or {@link #withDeadline} says otherwise. */
    public static final Duration DEFAULT_DEADLINE = Duration.ofMinutes(2);

    /**
     * The environment variables {@link #fromEnvironment()} reads: what the chart's NOTES and
     * helm/jenkins-assistant/examples/jenkins-values.yaml give the Jenkins controller.
     */
    public static final String ENV_TARGET = "JENKINS_ASSISTANT_TARGET";
    public static final String ENV_TOKEN = "JENKINS_ASSISTANT_TOKEN";

    private static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    private final ManagedChannel channel; // null for a view, which must not shut the shared channel down
    private final Channel authenticated;
    private final String owner;
    private final Duration deadline;
    private final JenkinsContext context; // null: requests go as given

    private AssistantClient(ManagedChannel channel, Channel authenticated, String owner, Duration deadline,
            JenkinsContext context) {
        this.channel = channel;
        this.authenticated = authenticated;
        this.owner = owner;
        this.deadline = deadline;
        this.context = context;
    }

    /**
     * A builder for the service at {@code target}: {@code host:port}, or a gRPC target such as
     * {@code dns:///jenkins-assistant-inference-headless:50051}, which the chart's headless Service is for (with
     * {@link Builder#roundRobin()}, calls spread over every replica).
     */
    public static Builder builder(String target) {
        return new Builder(Objects.requireNonNull(target, "target"));
    }

    /**
     * A builder configured from the controller's environment: {@value #ENV_TARGET} (required; e.g.
     * {@code dns:///<release>-jenkins-assistant-inference-headless.<namespace>.svc.cluster.local:50051}) and
     * {@value #ENV_TOKEN} (empty or unset: no token), with round_robin over the addresses the target resolves to.
     *
     * @throws IllegalStateException naming the variable when the target is not set, so that a missing setting reads
     *     as such rather than as a connection failure later
     */
    public static Builder fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** As {@link #fromEnvironment()}, from the given variables. */
    public static Builder fromEnvironment(java.util.Map<String, String> environment) {
        String target = environment.getOrDefault(ENV_TARGET, "").trim();
        if (target.isEmpty()) {
            throw new IllegalStateException(ENV_TARGET + " is not set: give the Jenkins controller the assistant's "
                    + "address (helm/jenkins-assistant prints it after install)");
        }
        // round_robin: with one address it is that address; with a headless Service it spreads calls over pods.
        return builder(target).token(environment.getOrDefault(ENV_TOKEN, "").trim()).roundRobin();
    }

    /** A view that fills in {@code owner} (the Jenkins user id) on requests that do not name one. */
    public AssistantClient withOwner(String owner) {
        return new AssistantClient(null, authenticated, Objects.requireNonNull(owner, "owner"), deadline, context);
    }

    /**
     * A view that fills in {@code context} (this controller's core version and installed plugins, the user's page
     * and locale) on chat, ask and explain requests that carry none: answers then prefer the installed plugins'
     * documentation and say when a plugin is missing, older than documented or covered by a security warning.
     */
    public AssistantClient withContext(JenkinsContext context) {
        return new AssistantClient(null, authenticated, owner, deadline, Objects.requireNonNull(context, "context"));
    }

    /** A view whose calls each get {@code deadline} from their start (a streamed answer: until its last event). */
    public AssistantClient withDeadline(Duration deadline) {
        return new AssistantClient(null, authenticated, owner, positive(deadline), context);
    }

    public String getOwner() {
        return owner;
    }

    public Duration getDeadline() {
        return deadline;
    }

    // ---- InferenceService -------------------------------------------------------------------------------------

    /** Streams the answer to {@code request} to {@code listener}; returns at once with the call, to cancel it. */
    public AnswerCall<ChatResponse, AnswerMetadata> chat(ChatRequest request, AnswerListener<AnswerMetadata> listener) {
        AnswerCall<ChatResponse, AnswerMetadata> call = new AnswerCall<>(listener, StreamEvents.CHAT);
        inference().chat(withOwner(request), call.observer());
        return call;
    }

    /** A question in session {@code sessionId} ("" = no memory), with the server's generation defaults. */
    public AnswerCall<ChatResponse, AnswerMetadata> chat(String sessionId, String question,
                                                         AnswerListener<AnswerMetadata> listener) {
        return chat(ChatRequest.newBuilder().setSessionId(sessionId).setQuestion(question).build(), listener);
    }

    /** Streams the answer to {@code request} as an iterator of events; close it to cancel. */
    public AnswerStream<ChatResponse> chat(ChatRequest request) {
        ChatRequest owned = withOwner(request);
        return stream(() -> inferenceBlocking().chat(owned));
    }

    /** The same answer as {@link #chat}, returned whole when generation ends. */
    public AskResponse ask(AskRequest request) {
        AskRequest owned = withOwner(request);
        return call(() -> inferenceBlocking().ask(owned));
    }

    public AskResponse ask(String sessionId, String question, GenerationOptions options) {
        return ask(AskRequest.newBuilder().setSessionId(sessionId).setQuestion(question).setOptions(options).build());
    }

    /** Records the user's rating of an answer ({@code answerId} from its metadata); only its owner may rate it. */
    public void submitFeedback(SubmitFeedbackRequest request) {
        SubmitFeedbackRequest owned = request.getOwner().isEmpty() ? request.toBuilder().setOwner(owner).build()
                : request;
        call(() -> inferenceBlocking().submitFeedback(owned));
    }

    public void submitFeedback(String answerId, String sessionId, Rating rating, String comment) {
        submitFeedback(SubmitFeedbackRequest.newBuilder().setAnswerId(answerId).setSessionId(sessionId)
                .setRating(rating).setComment(comment == null ? "" : comment).build());
    }

    /** The served model and index (a cheap call: a plugin's "test connection" button). */
    public GetModelInfoResponse modelInfo() {
        return call(() -> inferenceBlocking().getModelInfo(GetModelInfoRequest.getDefaultInstance()));
    }

    /**
     * Security warnings and deprecations (the update center's) of every plugin in {@code context} and of its core
     * version. {@link AssistantException} for FAILED_PRECONDITION when the service has no update center data.
     */
    public CheckPluginsResponse checkPlugins(JenkinsContext context) {
        CheckPluginsRequest request = CheckPluginsRequest.newBuilder().setContext(context).build();
        return call(() -> inferenceBlocking().checkPlugins(request));
    }

    // ---- BuildLogService --------------------------------------------------------------------------------------

    /** Streams why a build failed, from its console log, to {@code listener}; the metadata carries the facts. */
    public AnswerCall<ExplainBuildLogResponse, ExplainBuildLogMetadata> explainBuildLog(
            ExplainBuildLogRequest request, AnswerListener<ExplainBuildLogMetadata> listener) {
        AnswerCall<ExplainBuildLogResponse, ExplainBuildLogMetadata> call =
                new AnswerCall<>(listener, StreamEvents.EXPLAIN);
        buildLog().explainBuildLog(withOwner(request), call.observer());
        return call;
    }

    /** The explanation as an iterator of events; close it to cancel. */
    public AnswerStream<ExplainBuildLogResponse> explainBuildLog(ExplainBuildLogRequest request) {
        ExplainBuildLogRequest owned = withOwner(request);
        return stream(() -> BuildLogServiceGrpc.newBlockingStub(authenticated)
                .withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS).explainBuildLog(owned));
    }

    /** The same explanation, returned whole. */
    public GetBuildLogExplanationResponse getBuildLogExplanation(GetBuildLogExplanationRequest request) {
        GetBuildLogExplanationRequest.Builder builder = request.toBuilder();
        if (request.getOwner().isEmpty()) {
            builder.setOwner(owner);
        }
        if (context != null && !request.hasContext()) {
            builder.setContext(context);
        }
        GetBuildLogExplanationRequest owned = builder.build();
        return call(() -> BuildLogServiceGrpc.newBlockingStub(authenticated)
                .withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS).getBuildLogExplanation(owned));
    }

    // ---- lifecycle --------------------------------------------------------------------------------------------

    /**
     * Shuts the channel down: calls in progress get a few seconds to end, then are cancelled (their listeners get
     * {@link AssistantCancelledException} / {@link AssistantUnavailableException}); later calls fail with
     * {@link AssistantUnavailableException}. Does nothing on a view or a client over a channel it was given.
     */
    @Override
    public void close() {
        if (channel == null) {
            return;
        }
        channel.shutdown();
        try {
            if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
                channel.shutdownNow();
                channel.awaitTermination(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            channel.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }

    // ---- internals --------------------------------------------------------------------------------------------

    // Deadlines are set per call, when it starts: a stub's withDeadlineAfter fixes the instant at creation.
    private <S extends AbstractStub<S>> S timed(S stub) {
        return stub.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
    }

    private InferenceServiceGrpc.InferenceServiceStub inference() {
        return timed(InferenceServiceGrpc.newStub(authenticated));
    }

    private InferenceServiceGrpc.InferenceServiceBlockingStub inferenceBlocking() {
        return timed(InferenceServiceGrpc.newBlockingStub(authenticated));
    }

    private BuildLogServiceGrpc.BuildLogServiceStub buildLog() {
        return timed(BuildLogServiceGrpc.newStub(authenticated));
    }

    // The view's owner and context go on requests that name none.
    private ChatRequest withOwner(ChatRequest request) {
        ChatRequest.Builder builder = request.toBuilder();
        if (request.getOwner().isEmpty()) {
            builder.setOwner(owner);
        }
        if (context != null && !request.hasContext()) {
            builder.setContext(context);
        }
        return builder.build();
    }

    private AskRequest withOwner(AskRequest request) {
        AskRequest.Builder builder = request.toBuilder();
        if (request.getOwner().isEmpty()) {
            builder.setOwner(owner);
        }
        if (context != null && !request.hasContext()) {
            builder.setContext(context);
        }
        return builder.build();
    }

    private ExplainBuildLogRequest withOwner(ExplainBuildLogRequest request) {
        ExplainBuildLogRequest.Builder builder = request.toBuilder();
        if (request.getOwner().isEmpty()) {
            builder.setOwner(owner);
        }
        if (context != null && !request.hasContext()) {
            builder.setContext(context);
        }
        return builder.build();
    }

    private static <T> T call(Supplier<T> rpc) {
        try {
            return rpc.get();
        } catch (RuntimeException e) {
            throw AssistantException.from(e);
        }
    }

    private static <R> AnswerStream<R> stream(Supplier<Iterator<R>> start) {
        // A blocking stream is cancelled through the Context it was started in: each gets its own.
        Context.CancellableContext context = Context.current().withCancellation();
        Context previous = context.attach();
        try {
            return new AnswerStream<>(context, start.get());
        } catch (RuntimeException e) {
            context.cancel(e);
            throw AssistantException.from(e);
        } finally {
            context.detach(previous);
        }
    }

    private static Duration positive(Duration deadline) {
        if (deadline == null || deadline.isZero() || deadline.isNegative()) {
            throw new IllegalArgumentException("deadline must be positive: " + deadline);
        }
        return deadline;
    }

    /** Adds the bearer token to every call's headers (health and reflection do not need it; sending it is harmless). */
    private static final class BearerToken implements ClientInterceptor {
        private final String header;

        BearerToken(String token) {
            this.header = "Bearer " + token;
        }

        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
            return new ForwardingClientCall.SimpleForwardingClientCall<Q, R>(next.newCall(method, options)) {
                @Override
                public void start(Listener<R> listener, Metadata headers) {
                    headers.put(AUTHORIZATION, header);
                    super.start(listener, headers);
                }
            };
        }
    }

    /** Settings of a client; {@link #build()} opens the channel (lazily: nothing connects until the first call). */
    public static final class Builder {
        private final String target;
        private ManagedChannel channel;
        private String token = "";
        private String owner = "";
        private Duration deadline = DEFAULT_DEADLINE;
        private boolean transportSecurity;
        private boolean roundRobin;
        private int maxInboundMessageBytes = 16 * 1024 * 1024;

        private Builder(String target) {
            this.target = target;
        }

        /**
         * The bearer token of this client's credential (the service's AUTH_TOKEN, or this client's entry in its
         * AUTH_CLIENTS_FILE). Empty sends none: only for a service running without auth (development).
         */
        public Builder token(String token) {
            this.token = token == null ? "" : token;
            return this;
        }

        /** The owner filled in on requests that name none (usually set per user with {@link #withOwner}). */
        public Builder owner(String owner) {
            this.owner = Objects.requireNonNull(owner, "owner");
            return this;
        }

        public Builder deadline(Duration deadline) {
            this.deadline = positive(deadline);
            return this;
        }

        /** TLS with the JVM's trust store (e.g. behind an ingress); the default is plaintext, as in the chart. */
        public Builder useTransportSecurity() {
            this.transportSecurity = true;
            return this;
        }

        /** Spread calls over every address the target resolves to (a headless Service), not the first only. */
        public Builder roundRobin() {
            this.roundRobin = true;
            return this;
        }

        /** The largest response accepted; a whole explanation with its passages stays far below the default. */
        public Builder maxInboundMessageBytes(int bytes) {
            this.maxInboundMessageBytes = bytes;
            return this;
        }

        /**
         * Use a channel the caller built and owns (custom TLS, proxies, interceptors); the target given to
         * {@link AssistantClient#builder} is then ignored and {@link AssistantClient#close()} leaves it open.
         */
        public Builder channel(ManagedChannel channel) {
            this.channel = Objects.requireNonNull(channel, "channel");
            return this;
        }

        public AssistantClient build() {
            ManagedChannel owned = null;
            ManagedChannel base = channel;
            if (base == null) {
                ManagedChannelBuilder<?> builder = ManagedChannelBuilder.forTarget(target)
                        .maxInboundMessageSize(maxInboundMessageBytes);
                if (transportSecurity) {
                    builder.useTransportSecurity();
                } else {
                    builder.usePlaintext();
                }
                if (roundRobin) {
                    builder.defaultLoadBalancingPolicy("round_robin");
                }
                owned = builder.build();
                base = owned;
            }
            Channel authenticated = token.isEmpty() ? base : ClientInterceptors.intercept(base, new BearerToken(token));
            return new AssistantClient(owned, authenticated, owner, deadline, null);
        }
    }
}
