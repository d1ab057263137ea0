from imgdiff.cli import main

raise SystemExit(main())
