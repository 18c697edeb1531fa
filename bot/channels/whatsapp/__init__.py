"""The WhatsApp Cloud API channel (issue 12): building blocks, not wired into `wvb run` yet."""
