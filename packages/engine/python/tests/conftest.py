import sys
from pathlib import Path

# Tests import eaglet_engine from this checkout, whatever the working folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
