// SwiftPM links an executable with main set to <Target>_main; libFuzzer's driver is started
// from there (LLVMFuzzerRunDriver) instead of from libFuzzer's own main.
typealias FuzzArgv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<FuzzArgv?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("FuzzFiles_main")
func fuzzFilesMain(_ argc: CInt, _ argv: FuzzArgv?) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, fuzzFiles)
}
