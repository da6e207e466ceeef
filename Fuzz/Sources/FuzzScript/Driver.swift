import FuzzDriver

@_cdecl("FuzzScript_main")
func fuzzScriptMain(_ argc: CInt, _ argv: FuzzArgv?) -> CInt { runFuzzer(argc, argv, fuzzScript) }
