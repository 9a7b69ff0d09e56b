"""Training data from what users said about answers (`jenkins-assistant dataset export`) and from the documents."""
