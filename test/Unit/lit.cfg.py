# lit suite for kvc's GoogleTest unit tests: every *Tests executable in <build>/unittests.
import os
import lit.formats

config.name = "kvc-unit"
config.test_format = lit.formats.GoogleTest(".", "Tests")
config.test_source_root = os.path.join(config.kvc_obj_root, "unittests")
config.test_exec_root = config.test_source_root
config.environment["LD_LIBRARY_PATH"] = os.path.join(config.kvc_obj_root, "lib")
