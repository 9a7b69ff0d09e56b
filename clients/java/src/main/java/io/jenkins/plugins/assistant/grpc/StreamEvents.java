package io.jenkins.plugins.assistant.grpc;

import io.jenkins.plugins.assistant.grpc.v1.AnswerFinished;
import io.jenkins.plugins.assistant.grpc.v1.ChatResponse;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogMetadata;
import io.jenkins.plugins.assistant.grpc.v1.ExplainBuildLogResponse;
import io.jenkins.plugins.assistant.grpc.v1.Source;
import java.util.List;

/**
 * Reads the events of the two answer streams (Chat and ExplainBuildLog), which share their shape but are
 * different messages: one listener and one cancel path serve both.
 */
interface StreamEvents<R, M> {
    enum Kind { METADATA, SOURCES, DELTA, FINISHED, OTHER }

    Kind kind(R response);

    M metadata(R response);

    List<Source> sources(R response);

    String delta(R response);

    AnswerFinished finished(R response);

    StreamEvents<ChatResponse, io.jenkins.plugins.assistant.grpc.v1.AnswerMetadata> CHAT =
            new StreamEvents<ChatResponse, io.jenkins.plugins.assistant.grpc.v1.AnswerMetadata>() {
                @Override
                public Kind kind(ChatResponse r) {
                    switch (r.getEventCase()) {
                        case METADATA: return Kind.METADATA;
                        case SOURCES: return Kind.SOURCES;
                        case DELTA: return Kind.DELTA;
                        case FINISHED: return Kind.FINISHED;
                        default: return Kind.OTHER;
                    }
                }

                @Override
                public io.jenkins.plugins.assistant.grpc.v1.AnswerMetadata metadata(ChatResponse r) {
                    return r.getMetadata();
                }

                @Override
                public List<Source> sources(ChatResponse r) {
                    return r.getSources().getSourcesList();
                }

                @Override
                public String delta(ChatResponse r) {
                    return r.getDelta().getText();
                }

                @Override
                public AnswerFinished finished(ChatResponse r) {
                    return r.getFinished();
                }
            };

    StreamEvents<ExplainBuildLogResponse, ExplainBuildLogMetadata> EXPLAIN =
            new StreamEvents<ExplainBuildLogResponse, ExplainBuildLogMetadata>() {
                @Override
                public Kind kind(ExplainBuildLogResponse r) {
                    switch (r.getEventCase()) {
                        case METADATA: return Kind.METADATA;
                        case SOURCES: return Kind.SOURCES;
                        case DELTA: return Kind.DELTA;
                        case FINISHED: return Kind.FINISHED;
                        default: return Kind.OTHER;
                    }
                }

                @Override
                public ExplainBuildLogMetadata metadata(ExplainBuildLogResponse r) {
                    return r.getMetadata();
                }

                @Override
                public List<Source> sources(ExplainBuildLogResponse r) {
                    return r.getSources().getSourcesList();
                }

                @Override
                public String delta(ExplainBuildLogResponse r) {
                    return r.getDelta().getText();
                }

                @Override
                public AnswerFinished finished(ExplainBuildLogResponse r) {
                    return r.getFinished();
                }
            };
}
