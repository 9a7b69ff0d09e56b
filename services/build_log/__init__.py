"""Build-log facts for "explain a failed build": the deterministic, model-free part.

`extract` turns a Jenkins console log into `LogFacts` (failing stage and step, known signature, exception chain,
exit code, a bounded excerpt), masking secrets first; `mask_secrets` and `fingerprint` are usable on their own.
No gRPC here: a servicer converts `LogFacts` to its response.
"""

from jenkins_assistant.build_log.config import BuildLogSettings
from jenkins_assistant.build_log.extract import LogFacts, check_size, extract
from jenkins_assistant.build_log.fingerprint import fingerprint, normalise_message
from jenkins_assistant.build_log.masking import MASK, mask_secrets
from jenkins_assistant.build_log.signatures import SIGNATURES, Signature

__all__ = [
    "MASK",
    "SIGNATURES",
    "BuildLogSettings",
    "LogFacts",
    "Signature",
    "check_size",
    "extract",
    "fingerprint",
    "mask_secrets",
    "normalise_message",
]
