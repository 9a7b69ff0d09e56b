"""Jenkins questions a user would ask, each labelled with the page(s) that answer it (written for this
project, not taken from the pages). Used by the recall@5 test and the retrieval and index-build benchmarks."""

from __future__ import annotations

DOC = "https://www.jenkins.io/doc/book/"
PLUGIN = "https://plugins.jenkins.io/"

# (question, acceptable answer pages): a hit is any of those pages among the top 5 passages.
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("How do I put nginx in front of Jenkins as a reverse proxy?",
     (DOC + "system-administration/reverse-proxy-configuration-with-jenkins/reverse-proxy-configuration-nginx/",)),
    ("I forgot the admin password, how can I get back into Jenkins?",
     (DOC + "system-administration/admin-password-reset-instructions/",)),
    ("What do I need to copy to back up my Jenkins controller and restore it later?",
     (DOC + "system-administration/backing-up/", PLUGIN + "thinBackup/")),
    ("How do I run Jenkins inside a Docker container?", (DOC + "installing-jenkins/docker/",)),
    ("How do I install Jenkins on Windows so it runs as a service?", (DOC + "installing-jenkins/windows/",)),
    ("Can I install plugins on a Jenkins server that has no internet access?",
     (DOC + "installing-jenkins/offline/", DOC + "managing/plugins/")),
    ("How can I configure Jenkins from a YAML file instead of clicking through the UI?",
     (DOC + "managing/casc/",)),
    ("Where can I run Groovy code against the running Jenkins instance to debug it?",
     (DOC + "managing/script-console/",)),
    ("Why does my pipeline wait for an administrator to approve a method signature?",
     (DOC + "managing/script-approval/", PLUGIN + "script-security/")),
    ("How do I change the time zone Jenkins uses to display dates?",
     (DOC + "managing/change-system-timezone/", DOC + "using-jenkins/change-time-zone/")),
    ("How can I start a job remotely with curl and an API token?",
     (DOC + "using-jenkins/remote-access-api/", DOC + "system-administration/authenticating-scripted-clients/")),
    ("How do I reuse the same pipeline code across many repositories?", (DOC + "pipeline/shared-libraries/",)),
    ("How do I run my pipeline steps inside a specific Docker image?", (DOC + "pipeline/docker/",)),
    ("How do I get Jenkins to build every branch and pull request of my repository automatically?",
     (DOC + "pipeline/multibranch/",)),
    ("What is the difference between declarative and scripted pipeline syntax?",
     (DOC + "pipeline/syntax/", DOC + "pipeline/")),
    ("Jenkins is hanging, how do I capture a thread dump?", (DOC + "troubleshooting/obtaining-a-thread-dump/",)),
    ("My builds sit in the queue waiting for an available executor, what can I do?",
     (DOC + "using-jenkins/executor-starvation/",)),
    ("A build refuses to stop when I click abort, how do I kill it?", (DOC + "using-jenkins/aborting-a-build/",)),
    ("How do I store a password in Jenkins and use it in my job without showing it?",
     (DOC + "using-jenkins/using-credentials/", DOC + "security/credentials/", PLUGIN + "credentials-binding/")),
    ("How do I attach a new agent machine to my Jenkins controller?",
     (DOC + "using-jenkins/using-agents/", DOC + "managing/nodes/", PLUGIN + "ssh-slaves/")),
    ("Which Java versions can I run Jenkins on?",
     (DOC + "platform-information/support-policy-java/",)),
    ("What are the steps to move my Jenkins installation to Java 21?",
     (DOC + "platform-information/upgrade-java-to-21/",)),
    ("How much memory and disk space should a Jenkins controller have?",
     (DOC + "scaling/hardware-recommendations/",)),
    ("How does Jenkins protect against cross-site request forgery attacks?", (DOC + "security/csrf-protection/",)),
    ("How do I give each user different permissions in Jenkins?",
     (DOC + "security/access-control/", DOC + "security/permissions/", PLUGIN + "matrix-auth/",
      PLUGIN + "role-strategy/", DOC + "security/managing-security/")),
    ("Where are the Jenkins log files and how do I see them?", (DOC + "system-administration/viewing-logs/",)),
    ("How do I use the Jenkins command line client over SSH?", (DOC + "managing/cli/",)),
    ("How do I automatically throw away old builds to save disk space?",
     (PLUGIN + "build-discarder/", DOC + "pipeline/syntax/")),
    ("How do I make a build fail automatically when it runs too long?",
     (PLUGIN + "build-timeout/", DOC + "pipeline/syntax/")),
    ("How can I get colored ANSI output in the console log?", (PLUGIN + "ansicolor/",)),
    ("How do I group jobs into folders?", (PLUGIN + "cloudbees-folder/",)),
    ("How do I let users log in with their Active Directory accounts?", (PLUGIN + "active-directory/",)),
    ("How do I use AWS access keys stored in Jenkins from a pipeline?",
     (PLUGIN + "aws-credentials/", PLUGIN + "pipeline-aws/")),
    ("How do I provide a Maven settings.xml file to my build?",
     (PLUGIN + "config-file-provider/", PLUGIN + "maven-plugin/")),
    ("How do I deploy Jenkins on a Kubernetes cluster with Helm?",
     (DOC + "installing-jenkins/kubernetes/", DOC + "system-administration/administering-jenkins-on-kubernetes/")),
    ("How can I limit how many builds of a job run at the same time?",
     (PLUGIN + "throttle-concurrents/", DOC + "pipeline/syntax/")),
    ("How do I add a timestamp to every line of the build log?", (PLUGIN + "timestamper/",)),
    ("How do I post a message to a Slack channel when my build fails?", (PLUGIN + "slack/",)),
    ("How can a seed job create other jobs from a Groovy script?", (PLUGIN + "job-dsl/",)),
    ("How do I wipe the workspace once a build is finished?", (PLUGIN + "ws-cleanup/",)),
    ("How do I publish JUnit test reports from my pipeline?", (PLUGIN + "junit/",)),
    ("How do I expose Jenkins metrics to Prometheus?",
     (PLUGIN + "prometheus/", DOC + "system-administration/monitoring/")),
    ("How do I use an SSH private key in a pipeline to push to a git server?", (PLUGIN + "ssh-agent/",)),
    ("How do I read secrets from HashiCorp Vault in a job?", (PLUGIN + "hashicorp-vault-plugin/",)),
    ("How can builds run in pods on a Kubernetes cluster?", (PLUGIN + "kubernetes/",)),
    ("How do I stop two builds from using the same test database at once?", (PLUGIN + "lockable-resources/",)),
]


def recall_at_5(index) -> tuple[float, list[str]]:
    """Share of QUESTIONS with an accepted page among the index's top 5 passages, and the misses (question -> top 3)."""
    misses = []
    for question, pages in QUESTIONS:
        urls = [hit.chunk.url for hit in index.search(question, 5)]
        if not set(urls) & set(pages):
            misses.append(f"{question} -> {urls[:3]}")
    return 1 - len(misses) / len(QUESTIONS), misses
