"""Extensions: LLM agents, chat history and console agents built on the agents layer."""
