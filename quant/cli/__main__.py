from quant.cli import main

main()
