"""The harness asking through the real gRPC API (the tests' inference service, SmolLM2, the small index): a follow-up
is asked after its earlier questions in one session, and only its answer is scored."""

from __future__ import annotations

import grpc

from jenkins_assistant.evaluation.golden import FOLLOWUPS_PATH, load_golden
from jenkins_assistant.evaluation.runner import RunConfig, run
from jenkins_assistant.v1 import memory_pb2, memory_pb2_grpc
from tests.inference.fixtures import TEST_TOKEN


def test_a_follow_up_is_asked_after_its_earlier_questions_in_one_session(inference_process, memory_process):
    item = next(item for item in load_golden(FOLLOWUPS_PATH) if item.id == "followup-parallel-stage-main-branch")
    config = RunConfig(target=inference_process.target, token=TEST_TOKEN, max_tokens=8)
    [result], _seconds = run([item], config, progress=False)
    assert not result.error and result.question == item.question and result.sources
    # The service read the earlier exchange from memory: what it searched for is not the follow-up alone (the
    # model's rewrite, or the questions joined).
    assert result.standalone and result.standalone != item.question
    with grpc.insecure_channel(memory_process.target) as channel:
        history = memory_pb2_grpc.MemoryServiceStub(channel).GetHistory(memory_pb2.GetHistoryRequest(
            session_id=f"eval-{config.run_id}-{item.id}", owner="eval", k=5))
    assert [turn.user_text for turn in history.turns] == [*item.earlier, item.question]


def test_greedy_runs_send_temperature_0_and_served_runs_leave_sampling_to_the_server():
    """`--sampling served` leaves temperature and top_p to the service's defaults, as users get them; greedy runs
    send 0. Both are seeded, and by default the answer's length is the service's default too (max_tokens 0)."""
    from jenkins_assistant.evaluation.runner import _request

    greedy = _request("How do I archive artifacts?", "s", RunConfig(target="unused", max_tokens=256))
    assert greedy.options.HasField("temperature") and greedy.options.temperature == 0.0
    assert greedy.options.seed == 1 and greedy.options.max_tokens == 256
    served = _request("How do I archive artifacts?", "s", RunConfig(target="unused", temperature=None, seed=2))
    assert not served.options.HasField("temperature") and served.options.seed == 2
    assert served.options.max_tokens == 0
