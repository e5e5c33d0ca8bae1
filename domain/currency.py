"""ISO 4217 currencies in use and their minor-unit exponents."""

from __future__ import annotations

from domain.common import InvalidInput, shown

# Exponent 2 unless listed otherwise below; the list of codes is the active ISO 4217 table
# (funds codes, precious metals and "no currency" codes are left out on purpose).
_CODES_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR ISK JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP "
    "STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL"
).split()
_CODES_0 = "BIF CLP DJF GNF JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split()
_CODES_3 = "BHD IQD JOD KWD LYD OMR TND".split()

EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _CODES_2},
    **{code: 0 for code in _CODES_0},
    **{code: 3 for code in _CODES_3},
}


def check_currency(value: str, field: str = "currency") -> str:
    if value not in EXPONENTS:
        raise InvalidInput(field, f"unknown ISO 4217 currency code {shown(value)}")
    return value


def major_to_minor(major: int, currency: str) -> int:
    return major * 10 ** EXPONENTS[currency]
