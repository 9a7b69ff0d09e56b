"""Jenkins knowledge assistant: the services' shared namespace (`jenkins_assistant`)."""

__version__ = "0.1.0"
