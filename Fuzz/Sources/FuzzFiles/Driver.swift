import FuzzDriver

@_cdecl("FuzzFiles_main")
func fuzzFilesMain(_ argc: CInt, _ argv: FuzzArgv?) -> CInt { runFuzzer(argc, argv, fuzzFiles) }
