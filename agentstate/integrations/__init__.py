"""agentstate under other frameworks: one module per framework, each importing that framework,
which an extra installs (``pip install 'agentstate[langgraph]'`` for
:mod:`agentstate.integrations.langgraph`). ``import agentstate`` never imports them.
"""
