package io.jenkins.plugins.assistant.grpc;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import com.google.protobuf.ByteString;
import io.jenkins.plugins.assistant.grpc.v1.AnswerFinished;
import io.jenkins.plugins.assistant.grpc.v1.AnswerMetadata;
import io.jenkins.plugins.assistant.grpc.v1.AskRequest;
import io.jenkins.plugins.assistant.grpc.v1.AskResponse;
import io.jenkins.plugins.assistant.grpc.v1.ChatRequest;
import io.jenkins.plugins.assistant.grpc.v1.ChatResponse;
import io.jenkins.plugins.assistant.grpc.v1.CheckPluginsResponse;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogMetadata;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogRequest;
import io.jenkins.plugins.assistant.grpc.v1.FinishReason;
import io.jenkins.plugins.assistant.grpc.v1.GenerationOptions;
import io.jenkins.plugins.assistant.grpc.v1.GetBuildLogExplanationRequest;
import io.jenkins.plugins.assistant.grpc.v1.GetBuildLogExplanationResponse;
import io.jenkins.plugins.assistant.grpc.v1.GetModelInfoResponse;
import io.jenkins.plugins.assistant.grpc.v1.JenkinsContext;
import io.jenkins.plugins.assistant.grpc.v1.JenkinsPlugin;
import io.jenkins.plugins.assistant.grpc.v1.PluginFinding;
import io.jenkins.plugins.assistant.grpc.v1.PluginFindingKind;
import io.jenkins.plugins.assistant.grpc.v1.Rating;
import io.jenkins.plugins.assistant.grpc.v1.Source;
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * The client against the real services: tests/java/test_java_client.py starts Redis, the memory service and the
 * inference service (SmolLM2 on one CPU thread, one generation slot and a one-chat queue) and runs these tests
 * with the service's address, token and metrics URL in ASSISTANT_TEST_*. Without them (a plain `mvn package`)
 * every test is skipped. Answers are kept to a few tokens: each one costs seconds of CPU.
 */
public class AssistantClientTest {
    private static final String TARGET = System.getenv("ASSISTANT_TEST_TARGET");
    private static final String TOKEN = System.getenv("ASSISTANT_TEST_TOKEN");
    private static final String METRICS_URL = System.getenv("ASSISTANT_TEST_METRICS_URL");
    private static final String OWNER = "java-client-tester";
    private static final GenerationOptions SHORT = GenerationOptions.newBuilder().setMaxTokens(12).build();
    // An answer long enough to still be generating when the test cancels it or its deadline passes: sampled, so
    // it does not stop at the first end of sentence, and up to 1500 tokens (minutes on this model and CPU).
    private static final GenerationOptions LONG =
            GenerationOptions.newBuilder().setMaxTokens(1500).setTemperature(0.7f).setSeed(11).build();

    private static AssistantClient client;

    @BeforeClass
    public static void connect() {
        assumeTrue("ASSISTANT_TEST_TARGET is not set: these tests run from tests/java/test_java_client.py",
                TARGET != null && !TARGET.isEmpty());
        client = AssistantClient.builder(TARGET).token(TOKEN).owner(OWNER).deadline(Duration.ofSeconds(120)).build();
    }

    @AfterClass
    public static void disconnect() {
        if (client != null) {
            client.close();
        }
    }

    /** Each test leaves the one slot and the queue free for the next, whatever it did to its calls. */
    @After
    public void slotIsFree() throws Exception {
        assertEquals(0.0, awaitMetric("jenkins_assistant_inference_active_slots", 0.0, 60), 0.0);
        assertEquals(0.0, awaitMetric("jenkins_assistant_inference_queue_depth", 0.0, 60), 0.0);
    }

    @Test
    public void modelInfoNamesTheServedModelAndIndex() {
        GetModelInfoResponse info = client.modelInfo();
        assertFalse(info.getModel().isEmpty());
        assertEquals(1, info.getParallelSlots());
        assertTrue(info.getIndexedChunks() > 0);
    }

    @Test
    public void aStreamedChatHasMetadataThenSourcesThenTextThenFinished() throws Exception {
        Recorder<AnswerMetadata> recorder = new Recorder<>();
        AnswerCall<ChatResponse, AnswerMetadata> call = client.chat(ChatRequest.newBuilder()
                .setQuestion("How do I define a declarative Pipeline with a parallel stage?")
                .setOptions(SHORT).build(), recorder);
        AnswerFinished finished = call.done().get(120, TimeUnit.SECONDS);

        assertEquals(List.of("metadata", "sources", "delta", "finished", "completed"), recorder.kinds());
        assertFalse(recorder.metadata.getAnswerId().isEmpty());
        assertFalse(recorder.sources.isEmpty());
        for (int i = 0; i < recorder.sources.size(); i++) {
            Source source = recorder.sources.get(i);
            assertTrue(source.getUrl(), source.getUrl().startsWith("https://"));
            assertEquals(i + 1, source.getCitation()); // "[n]" in the text is the n-th source
        }
        assertFalse(recorder.text().isBlank());
        assertEquals(finished, recorder.finished);
        assertTrue(finished.getUsage().getCompletionTokens() > 0);

        // The answer's owner may rate it; any other owner is told it does not exist.
        String answerId = recorder.metadata.getAnswerId();
        client.submitFeedback(answerId, "", Rating.RATING_HELPFUL, "from the Java client");
        AssistantNotFoundException other = assertThrows(AssistantNotFoundException.class, () ->
                client.withOwner("someone-else").submitFeedback(answerId, "", Rating.RATING_HELPFUL, ""));
        assertEquals(io.grpc.Status.Code.NOT_FOUND, other.getCode());
    }

    @Test
    public void aFollowUpInTheSameSessionUsesTheStoredHistory() {
        String session = "java-" + UUID.randomUUID();
        AskResponse first = client.ask(session, "How do I define a declarative Pipeline with a parallel stage?",
                SHORT);
        assertEquals(0, first.getMetadata().getHistoryTurnsUsed());
        assertTrue(first.getFinished().getWarningsList().toString(), first.getFinished().getWarningsList().isEmpty());

        // The follow-up as an iterator of events, the other streaming style.
        AnswerMetadata metadata = null;
        AnswerFinished finished = null;
        try (AnswerStream<ChatResponse> events = client.chat(ChatRequest.newBuilder().setSessionId(session)
                .setQuestion("Can each branch run on its own agent?").setOptions(SHORT).build())) {
            while (events.hasNext()) {
                ChatResponse event = events.next();
                if (event.hasMetadata()) {
                    metadata = event.getMetadata();
                } else if (event.hasFinished()) {
                    finished = event.getFinished();
                }
            }
        }
        assertTrue(metadata.getMemoryAvailable());
        assertEquals(1, metadata.getHistoryTurnsUsed());
        assertFalse(metadata.getStandaloneQuestion().isEmpty());
        assertNotEquals(FinishReason.FINISH_REASON_CANCELLED, finished.getFinishReason());

        // Sessions belong to their owner: another user naming the same session id starts with no history.
        AskResponse stranger = client.withOwner("another-user").ask(session, "Can each branch run on its own agent?",
                GenerationOptions.newBuilder().setMaxTokens(1).build());
        assertEquals(0, stranger.getMetadata().getHistoryTurnsUsed());
    }

    @Test
    public void cancellingMidStreamFreesTheSlotForTheNextQuestion() throws Exception {
        CountDownLatch firstDelta = new CountDownLatch(1);
        Recorder<AnswerMetadata> recorder = new Recorder<AnswerMetadata>() {
            @Override
            public void onDelta(String text) {
                super.onDelta(text);
                firstDelta.countDown();
            }
        };
        AnswerCall<ChatResponse, AnswerMetadata> call = client.chat(ChatRequest.newBuilder()
                .setQuestion("Explain Jenkins agents in detail.").setOptions(LONG).build(), recorder);
        assertTrue("no text within 120 s", firstDelta.await(120, TimeUnit.SECONDS));
        assertEquals(1.0, awaitMetric("jenkins_assistant_inference_active_slots", 1.0, 10), 0.0);
        call.cancel();

        ExecutionException ended = assertThrows(ExecutionException.class, () -> call.done().get(30, TimeUnit.SECONDS));
        assertTrue(ended.getCause() instanceof AssistantCancelledException);
        assertTrue(recorder.error instanceof AssistantCancelledException);
        assertFalse(recorder.kinds().contains("finished"));
        // The service stopped generating (its one slot is free within seconds, not after 1500 tokens) ...
        assertEquals(0.0, awaitMetric("jenkins_assistant_inference_active_slots", 0.0, 20), 0.0);
        // ... so the next question, which would otherwise wait in the queue behind it, is answered at once.
        AskResponse next = client.withDeadline(Duration.ofSeconds(60)).ask("", "What is a Jenkins agent?", SHORT);
        assertFalse(next.getText().isEmpty());
    }

    @Test
    public void aOneSecondDeadlineEndsTheCallWithDeadlineExceeded() throws Exception {
        AssistantClient hurried = client.withDeadline(Duration.ofSeconds(1));
        long start = System.nanoTime();
        AssistantDeadlineExceededException error = assertThrows(AssistantDeadlineExceededException.class, () -> {
            try (AnswerStream<ChatResponse> events = hurried.chat(ChatRequest.newBuilder()
                    .setQuestion("Explain Jenkins agents in detail.").setOptions(LONG).build())) {
                while (events.hasNext()) {
                    events.next();
                }
            }
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue("took " + seconds + " s", seconds < 5);
        assertFalse(error.isRetryable());
        // The service gives the slot up too (checked again by slotIsFree).
        assertEquals(0.0, awaitMetric("jenkins_assistant_inference_active_slots", 0.0, 20), 0.0);

        // The same for a unary call and the listener style.
        assertThrows(AssistantDeadlineExceededException.class, () -> hurried.ask("", "Explain Jenkins agents.", LONG));
        Recorder<AnswerMetadata> recorder = new Recorder<>();
        CompletableFuture<AnswerFinished> done = hurried.chat(ChatRequest.newBuilder()
                .setQuestion("Explain Jenkins agents in detail.").setOptions(LONG).build(), recorder).done();
        ExecutionException ended = assertThrows(ExecutionException.class, () -> done.get(30, TimeUnit.SECONDS));
        assertTrue(ended.getCause() instanceof AssistantDeadlineExceededException);
    }

    @Test
    public void aWrongOrMissingTokenIsUnauthenticated() throws Exception {
        for (String token : new String[] {"not-the-token", ""}) {
            try (AssistantClient intruder = AssistantClient.builder(TARGET).token(token).owner(OWNER).build()) {
                AssistantUnauthenticatedException info =
                        assertThrows(AssistantUnauthenticatedException.class, intruder::modelInfo);
                assertTrue(info.getMessage(), info.getMessage().contains("bearer token"));
                assertThrows(AssistantUnauthenticatedException.class, () -> intruder.ask("", "What is Jenkins?", SHORT));

                Recorder<AnswerMetadata> recorder = new Recorder<>();
                CompletableFuture<AnswerFinished> done =
                        intruder.chat(ChatRequest.newBuilder().setQuestion("What is Jenkins?").build(), recorder).done();
                ExecutionException ended = assertThrows(ExecutionException.class, () -> done.get(30, TimeUnit.SECONDS));
                assertTrue(ended.getCause() instanceof AssistantUnauthenticatedException);
                assertEquals(List.of("error"), recorder.kinds());
            }
        }
    }

    @Test
    public void theControllersContextShapesTheAnswerAndItsPluginsAreChecked() {
        JenkinsContext context = JenkinsContext.newBuilder().setCoreVersion("2.452.3").setLocale("en-US")
                .addPlugins(JenkinsPlugin.newBuilder().setPluginId("slack").setVersion("2.0"))
                .addPlugins(JenkinsPlugin.newBuilder().setPluginId("ssh").setVersion("158.ve2a_e90fb_7319"))
                .build();
        AskResponse answer = client.withContext(context).ask("", "How do I send a Slack notification from a pipeline?",
                GenerationOptions.newBuilder().setMaxTokens(8).setTemperature(0f).build());
        assertEquals("2.452.3", answer.getMetadata().getJenkinsContext().getCoreVersion());
        assertEquals(List.of("slack"), answer.getMetadata().getJenkinsContext().getInstalledPluginsUsedList());
        // slack 2.0 is covered by the update center's SECURITY-976.
        assertTrue(answer.getMetadata().getPluginFindingsList().stream()
                .anyMatch(f -> f.getWarningId().equals("SECURITY-976") && f.getUrl().contains("/security/advisory/")));

        CheckPluginsResponse checked = client.checkPlugins(context);
        List<String> ids = new ArrayList<>();
        for (PluginFinding finding : checked.getFindingsList()) {
            assertEquals(PluginFindingKind.PLUGIN_FINDING_KIND_SECURITY_WARNING, finding.getKind());
            ids.add(finding.getPluginId() + " " + finding.getWarningId());
        }
        assertTrue(ids.toString(), ids.contains("ssh SECURITY-2093") && ids.contains("slack SECURITY-976"));

        // Over the limits: the service names the limit.
        JenkinsContext.Builder tooMany = JenkinsContext.newBuilder();
        for (int i = 0; i <= 500; i++) {
            tooMany.addPlugins(JenkinsPlugin.newBuilder().setPluginId("p" + i).setVersion("1.0"));
        }
        AssistantInvalidRequestException refused = assertThrows(AssistantInvalidRequestException.class,
                () -> client.checkPlugins(tooMany.build()));
        assertTrue(refused.getMessage(), refused.getMessage().contains("the limit is 500"));
    }

    @Test
    public void aBadRequestIsAnInvalidRequest() {
        AssistantInvalidRequestException empty = assertThrows(AssistantInvalidRequestException.class,
                () -> client.ask("", "", SHORT));
        assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, empty.getCode());
        assertTrue(empty.getMessage(), empty.getMessage().contains("question"));

        // A session needs an owner: a client that names none is refused, not given a shared default.
        AssistantClient nobody = client.withOwner("");
        assertThrows(AssistantInvalidRequestException.class, () -> nobody.ask(AskRequest.newBuilder()
                .setSessionId("java-" + UUID.randomUUID()).setQuestion("What is Jenkins?").setOptions(SHORT).build()));

        // The streaming call reports it on its first read.
        try (AnswerStream<ChatResponse> events = client.chat(ChatRequest.newBuilder().setQuestion("What is Jenkins?")
                .setOptions(GenerationOptions.newBuilder().setRetrievalK(-1)).build())) {
            assertThrows(AssistantInvalidRequestException.class, events::hasNext);
        }
    }

    @Test
    public void aBuildLogIsExplainedWithTheFactsFirst() throws Exception {
        byte[] log = String.join("\n",
                "Started by user admin",
                "[Pipeline] Start of Pipeline",
                "[Pipeline] { (Build)",
                "[Pipeline] sh",
                "+ make test",
                "make: *** [Makefile:3: test] Error 2",
                "[Pipeline] }",
                "ERROR: script returned exit code 2",
                "Finished: FAILURE",
                "").getBytes(StandardCharsets.UTF_8);
        ExplainBuildLogRequest request = ExplainBuildLogRequest.newBuilder().setLog(ByteString.copyFrom(log))
                .setJobName("folder/my-pipeline").setBuildNumber(42).setOptions(SHORT).build();
        Recorder<ExplainBuildLogMetadata> recorder = new Recorder<>();
        client.explainBuildLog(request, recorder).done().get(120, TimeUnit.SECONDS);

        assertEquals(List.of("metadata", "sources", "delta", "finished", "completed"), recorder.kinds());
        assertEquals("FAILURE", recorder.metadata.getFacts().getResult());
        assertEquals(2, recorder.metadata.getFacts().getExitCode());
        assertFalse(recorder.metadata.getAnswer().getAnswerId().isEmpty());

        GetBuildLogExplanationResponse whole = client.getBuildLogExplanation(GetBuildLogExplanationRequest
                .newBuilder().setLog(ByteString.copyFrom(log)).setOptions(SHORT).build());
        assertEquals(recorder.metadata.getFacts().getFingerprint(), whole.getMetadata().getFacts().getFingerprint());
    }

    @Test
    public void anUnreachableOrClosedClientIsUnavailable() {
        // Port 1 on loopback: nothing listens there, the connection is refused.
        try (AssistantClient nowhere = AssistantClient.builder("127.0.0.1:1").token(TOKEN)
                .deadline(Duration.ofSeconds(10)).build()) {
            AssistantUnavailableException error = assertThrows(AssistantUnavailableException.class, nowhere::modelInfo);
            assertTrue(error.isRetryable());
        }
        AssistantClient closed = AssistantClient.builder(TARGET).token(TOKEN).build();
        assertFalse(closed.modelInfo().getModel().isEmpty());
        closed.close();
        assertThrows(AssistantUnavailableException.class, closed::modelInfo);
    }

    @Test
    public void theControllersEnvironmentConfiguresTheClient() {
        // The variables helm/jenkins-assistant/examples/jenkins-values.yaml gives the controller.
        try (AssistantClient fromEnv = AssistantClient.fromEnvironment(Map.of(
                AssistantClient.ENV_TARGET, TARGET, AssistantClient.ENV_TOKEN, TOKEN)).build()) {
            assertFalse(fromEnv.modelInfo().getModel().isEmpty());
        }
        IllegalStateException unset = assertThrows(IllegalStateException.class,
                () -> AssistantClient.fromEnvironment(Map.of(AssistantClient.ENV_TOKEN, TOKEN)));
        assertTrue(unset.getMessage(), unset.getMessage().contains("JENKINS_ASSISTANT_TARGET is not set"));
    }

    /** Records a stream's events in order. */
    private static class Recorder<M> implements AnswerListener<M> {
        private final List<String> kinds = Collections.synchronizedList(new ArrayList<>());
        private final StringBuffer text = new StringBuffer();
        volatile M metadata;
        volatile List<Source> sources = List.of();
        volatile AnswerFinished finished;
        volatile AssistantException error;

        @Override
        public void onMetadata(M metadata) {
            this.metadata = metadata;
            note("metadata");
        }

        @Override
        public void onSources(List<Source> sources) {
            this.sources = sources;
            note("sources");
        }

        @Override
        public void onDelta(String delta) {
            text.append(delta);
            note("delta");
        }

        @Override
        public void onFinished(AnswerFinished finished) {
            this.finished = finished;
            note("finished");
        }

        @Override
        public void onCompleted() {
            note("completed");
        }

        @Override
        public void onError(AssistantException error) {
            this.error = error;
            note("error");
        }

        /** Consecutive deltas count once, so the order reads metadata, sources, delta, finished. */
        private void note(String kind) {
            synchronized (kinds) {
                if (kinds.isEmpty() || !kinds.get(kinds.size() - 1).equals(kind)) {
                    kinds.add(kind);
                }
            }
        }

        List<String> kinds() {
            synchronized (kinds) {
                return new ArrayList<>(kinds);
            }
        }

        String text() {
            return text.toString();
        }
    }

    /** Polls the service's Prometheus endpoint until the sample equals value (a bounded wait, not a timing check). */
    private static double awaitMetric(String name, double value, int timeoutSeconds) throws Exception {
        if (METRICS_URL == null || METRICS_URL.isEmpty()) {
            return value; // not given: the checks that need it are left to the calls themselves
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        double current = scrape(name);
        while (current != value && System.nanoTime() < deadline) {
            Thread.sleep(100);
            current = scrape(name);
        }
        return current;
    }

    private static double scrape(String name) throws Exception {
        String text;
        try (InputStream in = new URL(METRICS_URL).openStream()) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        for (String line : text.split("\n")) {
            if (line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return 0.0;
    }
}
