from optuna_llm.cli import main

raise SystemExit(main())
