from chainconsult.cli import main

main()
