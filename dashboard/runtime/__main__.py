import sys

from dashboard.runtime.supervisor import main

sys.exit(main(sys.argv[1:]))
