from mlscaffold.cli import main

main()
