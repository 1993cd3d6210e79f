from metricstore.cli import main

main()
