from genzoo.cli import main

raise SystemExit(main())
