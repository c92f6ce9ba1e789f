from percalign.cli import main

raise SystemExit(main())
