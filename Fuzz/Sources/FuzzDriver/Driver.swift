// SwiftPM links an executable with main set to <Target>_main; libFuzzer's driver is started
// from there (LLVMFuzzerRunDriver) instead of from libFuzzer's own main. Each harness calls this.
public typealias FuzzArgv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
public typealias FuzzInput = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<FuzzArgv?>,
                         _ callback: FuzzInput) -> CInt

/// Runs libFuzzer with the command line, feeding each input to `body`.
public func runFuzzer(_ argc: CInt, _ argv: FuzzArgv?, _ body: FuzzInput) -> CInt {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, body)
}
