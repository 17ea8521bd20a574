"""`python -m voice_onboarding_client ...` is the `voice-onboarding` command."""

import sys

from voice_onboarding_client.cli import main

sys.exit(main())
