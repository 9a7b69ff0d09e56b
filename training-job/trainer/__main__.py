"""`python -m jenkins_assistant.training --config ...` (same as the jenkins-assistant-train console script)."""

import sys

from .cli import cli

sys.exit(cli())
