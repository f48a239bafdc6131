from fulfil_client.cli import main

main()
