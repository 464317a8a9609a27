import sys

from runtime.supervisor import main

sys.exit(main(sys.argv[1:]))
