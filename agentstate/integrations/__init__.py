"""agentstate under other frameworks: one module per framework, each importing that framework,
which an extra installs. ``import agentstate`` never imports them.

- :mod:`agentstate.integrations.langgraph`: LangGraph checkpointers
  (``pip install 'agentstate[langgraph]'``).
- :mod:`agentstate.integrations.openai_agents`: an OpenAI Agents SDK session
  (``pip install 'agentstate[openai-agents]'``).
"""
