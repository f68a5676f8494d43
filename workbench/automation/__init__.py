"""Automation: the watcher (new files in watched folders → batches), and the
pipeline each batch goes through (register → validate → drift → retrain →
evaluate → promote → export).

The watcher and the pipeline worker log through `logging` under this
package's logger; nothing is printed unless the application configures
logging (the daemon's own output goes through its `report` callback).
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
