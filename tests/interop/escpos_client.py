#!/usr/bin/env python3
"""Drives a printer through python-escpos over a serial device and prints a
JSON line of what python-escpos concluded. Used by tests/interop_escpos.rs.

    escpos_client.py PATH          status, Cyrillic text, native QR, cut, drawer
    escpos_client.py PATH status   status only

Each status query costs about a second: python-escpos reads 16 bytes with
the serial timeout (1 s) and a printer sends one.
"""
import json
import sys

QR = "t=20260123T1405&s=150.00&fn=9999078900004312&i=123&fp=3344550012&n=1"
TEXT = "Съешь же ещё этих мягких французских булок, да выпей чаю"


def main() -> int:
    try:
        from escpos.printer import Serial
    except ImportError as e:
        print(json.dumps({"error": f"import escpos failed: {e}"}))
        return 3
    path = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "full"
    p = Serial(devfile=path, baudrate=115200, timeout=1)
    p.open()
    result = {"online": p.is_online(), "paper": p.paper_status()}
    if mode == "full":
        p.textln(TEXT)
        p.textln("ИТОГ 150.00")
        p.qr(QR, native=True)
        p.cut()
        p.cashdraw(2)
        result["qr"] = QR
        result["text"] = TEXT
    p.close()
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
