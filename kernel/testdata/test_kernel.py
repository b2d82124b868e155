"""Conformance tests of the dpsflow Go kernel with jupyter_kernel_test.

Run by kernel/conformance_test.go (go test ./kernel/ -run Conformance), which builds the
kernel, installs its spec into a temporary JUPYTER_DATA_DIR and sets DPSFLOW_KERNEL_NAME.
By hand: install the kernel spec, then
    DPSFLOW_KERNEL_NAME=dpsflow-go /usr/bin/python3 -m unittest -v kernel/testdata/test_kernel.py
"""

import os
import time
import unittest
from queue import Empty

import jupyter_kernel_test as jkt
from jupyter_client.utils import run_sync

KERNEL_NAME = os.environ.get("DPSFLOW_KERNEL_NAME", "dpsflow-go")


class GoKernelTests(jkt.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "go"
    file_extension = ".go"

    code_hello_world = 'import "fmt"\nfmt.Println("hello, world")'
    # os.Stderr is the process's own stderr: this also checks that output of compiled
    # code reaches the cell.
    code_stderr = 'import ("fmt"; "os")\nfmt.Fprintln(os.Stderr, "to stderr")'

    completion_samples = [
        {"text": "fmt.Printl", "matches": {"Println"}},
        {"text": "strings.ToUpp", "matches": {"ToUpper", "ToUpperSpecial"}},
    ]
    complete_code_samples = ["x := 1", "func f() int { return 1 }", 'import "fmt"', "for i := 0; i < 3; i++ {}"]
    incomplete_code_samples = ["func f() {", "x := []int{1,", "s := `raw", "y := 1 +"]
    invalid_code_samples = ["x := )", "fmt.Println(}"]

    code_page_something = "fmt.Println?"
    code_inspect_sample = "fmt.Println"
    code_generate_error = 'panic("boom")'
    code_clear_output = "display.Clear()"

    code_execute_result = [
        {"code": "1+2", "result": "3"},
        {"code": 'x := 6\nx * 7', "result": "42"},
        {"code": '"go" + "mlx"', "result": "gomlx"},
    ]
    code_history_pattern = "1+2*"
    supported_history_operations = ("tail", "range", "search")

    code_display_data = [
        {"code": 'import "image"\ndisplay.Image(image.NewGray(image.Rect(0, 0, 8, 8)))', "mime": "image/png"},
        {"code": 'display.HTML("<b>bold</b>")', "mime": "text/html"},
        {"code": 'display.Markdown("# title")', "mime": "text/markdown"},
        {"code": 'display.SVG("<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>")', "mime": "image/svg+xml"},
    ]

    # interrupt_request on control stops an infinite loop within a second.
    def test_go_interrupt_infinite_loop(self):
        self.flush_channels()
        msg_id = self.kc.execute("for {\n}")
        time.sleep(0.5)
        start = time.time()
        self.km.interrupt_kernel()
        reply = self.get_non_kernel_info_reply(timeout=10)
        elapsed = time.time() - start
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "Interrupted")
        self.assertLess(elapsed, 1.0)
        # The kernel still works.
        self.flush_channels()
        reply, output = self.execute_helper("1+1")
        self.assertEqual(reply["content"]["status"], "ok")

    # A panic is an error reply naming the cell line.
    def test_go_error_has_line(self):
        self.flush_channels()
        reply, output = self.execute_helper("a := 1\nvar xs []int\n_ = xs[a+2]")
        self.assertEqual(reply["content"]["status"], "error")
        self.assertIn("line 3", reply["content"]["evalue"])
        errors = [m for m in output if m["msg_type"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertTrue(any("xs[a+2]" in line for line in errors[0]["content"]["traceback"]))

    # Values persist; re-running a cell re-runs its dependents and says which.
    def test_go_state_and_reactive_rerun(self):
        self.flush_channels()

        def run(code, cell_id):
            msg_id = self.kc.execute(code) if cell_id is None else self._execute_with_id(code, cell_id)
            reply = self.get_non_kernel_info_reply(timeout=30)
            self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
            out = []
            while True:
                msg = run_sync(self.kc.iopub_channel.get_msg)(timeout=5)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
                out.append(msg)
            return reply, out

        run("base := 2", "cell-a")
        run("sq := base * base", "cell-b")
        reply, out = run("base := 5", "cell-a")
        self.assertEqual(reply["content"]["status"], "ok")
        text = "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")
        self.assertIn("re-ran dependents: [", text)
        reply, out = run("sq", None)
        results = [m for m in out if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "25")

    # A progress bar is a display_data with a display_id, then update_display_data.
    def test_go_progress_updates_in_place(self):
        self.flush_channels()
        reply, output = self.execute_helper(
            'import "time"\np := display.NewProgress("work", 3)\n'
            "for i := 1; i <= 3; i++ { time.Sleep(120 * time.Millisecond); p.Set(i) }\np.Done()"
        )
        self.assertEqual(reply["content"]["status"], "ok")
        first = [m for m in output if m["msg_type"] == "display_data"]
        updates = [m for m in output if m["msg_type"] == "update_display_data"]
        self.assertEqual(len(first), 1)
        display_id = first[0]["content"]["transient"]["display_id"]
        self.assertGreaterEqual(len(updates), 1)
        for u in updates:
            self.assertEqual(u["content"]["transient"]["display_id"], display_id)

    def _execute_with_id(self, code, cell_id):
        """Send an execute_request carrying metadata.cellId, as JupyterLab does."""
        content = dict(code=code, silent=False, store_history=True, user_expressions={},
                       allow_stdin=False, stop_on_error=True)
        msg = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]


if __name__ == "__main__":
    unittest.main()
