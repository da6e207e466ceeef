import TrickbookModels
import TrickbookMPI
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

/// Data-parallel training over MPI (`mpirun -np N trickbook run notebook.tb`): the globals `rank`
/// and `world_size`, sums across the ranks, synchronised batch norm. Loaders shard and
/// optimizers average gradients by themselves under MPI (see DataParallel.swift); with one
/// process all of this is the identity.
enum ParallelLibrary: Library {
    static let rows: [Row] = [
        Row(
            "all_sum(values)",
            doc: """
                A number or a list of numbers summed over every rank of a data-parallel run (the same on each); \
                with one process, the values themselves. Every rank must call it at the same point.
                """,
            example: "all_sum([3, 10])  # [3, 10] on one process; under MPI, every rank's counts added"
        ) { a in
            let v = try a.value("values")
            if let x = v.number {
                var one = [x]
                try MPI.sum(&one)
                if case .int = v, let n = Int(exactly: one[0]) { return .int(n) }
                return .float(one[0])
            }
            guard case .list(let l) = v else { throw a.fail("values", "must be a number or a list of numbers, got \(v.typeName)") }
            var xs = try l.items.enumerated().map { j, item -> Double in
                guard let x = item.number else { throw a.fail("values", "must hold numbers, item \(j) is \(item.typeName)") }
                return x
            }
            try MPI.sum(&xs)
            // Ints stay ints when the sum is whole (counts), as one process would give them.
            return list(zip(l.items, xs).map { item, x in
                if case .int = item, let n = Int(exactly: x) { return .int(n) }
                return .float(x)
            })
        },
        Row(
            "sync_bn(model, on = true)",
            doc: """
                Synchronised batch norm for data-parallel training: each batch norm's statistics are those of the \
                global batch (summed over the ranks), so N ranks of batch b train as one process of batch N·b. \
                Returns the layers changed (0 with one process). The paper's setting, and the default, is local.
                """,
            example: "sync_bn(model)"
        ) { a in
            .int(DataParallel.synchronizeBatchNorm(try a.host("model", ModelBox.self).model, try a.bool("on")))
        },
        Row(
            "as_ranks(n)",
            doc: """
                Makes this one process compute each batch as n data-parallel ranks with synchronised batch norm do: \
                the sums over the batch (convolution and linear weight gradients, batch norm's statistics) are taken \
                share by share, as the loader shares a global batch out, and the shares' sums added in order. On the \
                ranks' thread count, one process then gives bitwise the weights 2 ranks give: a check of \
                data-parallel training that rounding cannot blur. FP32. as_ranks(1) turns it off; returns the \
                previous n.
                """,
            example: "as_ranks(1)  # as_ranks(2) before training: this process computes as 2 ranks do"
        ) { a in
            let n = try a.int("n", in: 1...4096)
            guard n == 1 || MPI.size == 1 else {
                throw ScriptError("as_ranks(\(n)) is for one process; under mpirun the \(MPI.size) ranks share each batch already")
            }
            let before = BatchShares.requested
            BatchShares.requested = n
            return .int(before)
        },
    ]
    static let types: [HostType] = []

    /// The globals a session sees: `rank` (0 without MPI) and `world_size` (1 without MPI). A new
    /// session (a restarted kernel) computes as one process again, whatever `as_ranks` said.
    static func define(in i: Interpreter) {
        BatchShares.requested = 1
        i.define("rank", .int(MPI.rank))
        i.define("world_size", .int(MPI.size))
    }
}
