from gql_api.cli import main

raise SystemExit(main())
