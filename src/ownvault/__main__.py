from ownvault.cli import main

main()
