from offline_service.cli import main

raise SystemExit(main())
