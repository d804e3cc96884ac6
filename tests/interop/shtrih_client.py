#!/usr/bin/env python3
"""Drive a Shtrih-M register (the fiscald emulator) with pyshtrih 2.0.6.

Usage: shtrih_client.py PATH

Discovers the device on PATH at 115200 baud, then: short and full status,
open shift, open a sale check, one sale line (2 x 150.00, Cyrillic name),
close paid 500.00 cash, FN status, find the last FD, Z report, status again.
Prints one JSON object; exits non-zero on any exception.
"""

import json
import sys

import pyshtrih


def mode_of(state):
    m = state[u"Режим ФР"]
    return {"mode": m.num, "status": m.status, "submode": state[u"Подрежим ФР"].num}


def main(path):
    found = pyshtrih.discovery(port=path, baudrate=115200)
    if len(found) != 1:
        raise RuntimeError("discovery found %d devices" % len(found))
    dev = found[0]
    out = {"class": type(dev).__name__, "name": dev.name}
    dev.connect()
    try:
        out["short_before"] = mode_of(dev.state())
        full = dev.full_state()
        out["full_before"] = {
            "mode": full[u"Режим ФР"].num,
            "serial": full[u"Заводской номер"],
            "date": full[u"Дата"].isoformat(),
            "time": full[u"Время"].isoformat(),
            "document_number": full[u"Сквозной номер текущего документа"],
        }
        fd_before = dev.fs_state()[u"Номер последнего ФД"]
        out["fd_before"] = fd_before

        dev.open_shift()
        out["after_open_shift"] = mode_of(dev.state())

        dev.open_check(0)
        dev.sale((u"Хлеб ржаной «Бородинский»", 2000, 15000), department_num=1, tax1=1)
        out["in_check"] = mode_of(dev.state())
        closed = dev.close_check(cash=50000)
        out["change"] = closed[u"Сдача"]
        out["after_close"] = mode_of(dev.state())

        fs = dev.fs_state()
        last_fd = fs[u"Номер последнего ФД"]
        out["last_fd"] = last_fd
        out["fn_number"] = bytes(fs[u"Номер ФН"]).decode("ascii").strip()
        out["fn_shift_open"] = fs[u"Состояние смены"]
        doc = dev.fs_find_document_by_num(last_fd)
        out["doc_type"] = doc[u"Тип фискального документа"]
        data = bytes(doc[u"Данные фискального документа"])
        out["doc_fiscal_sign"] = int.from_bytes(data[9:13], "little")
        out["doc_operation"] = data[13]
        out["doc_sum"] = int.from_bytes(data[14:19], "little")

        dev.z_report()
        out["after_z"] = mode_of(dev.state())
        out["fd_after_z"] = dev.fs_state()[u"Номер последнего ФД"]
    finally:
        dev.disconnect()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: shtrih_client.py PATH\n")
        sys.exit(2)
    main(sys.argv[1])
