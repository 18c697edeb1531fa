"""Services: every action on workers, cases, broadcasts and lessons exists once, here.

The conversation core, the CLI and the staff chat are thin callers of these functions.
"""
