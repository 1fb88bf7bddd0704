"""The caller's side of a 112 call: the IVR that runs over AGI before the call is queued.

flow.py decides (pure), session.py drives a channel through those decisions, agi.py is the only
module that speaks AGI (through pyst2), lookup.py asks the database about the caller with a
deadline, store.py records what the IVR did, server.py is the FastAGI server.
"""
