"""``python -m bench.scenarios.notify subscribe ...``: the supabase-py subscriber process."""

from bench.scenarios.notify.subscriber import main

raise SystemExit(main())
